"""The comparison with a ground truth has one definition: error = (fitted - truth) / |truth| (fitted - truth
where the truth is 0), so that a positive error means the fit lies above the truth whatever the truth's
sign; the recovery lines of the command line, the report's summary and the sweep's records all show it."""
import numpy as np
import pytest

import pixelkinetics as pk
from pixelkinetics.kinetics.report import write_report
from pixelkinetics.kinetics.results import FittedMovie, Results
from pixelkinetics.kinetics.truth import format_error, parameter_error, recovery_lines


@pytest.mark.parametrize("value, truth, error, relative, text", [
    (-1.1, -1.0, -0.1, True, "-10%"),     # below a negative truth: negative (dividing by the truth said +10%)
    (-0.9, -1.0, 0.1, True, "+10%"),
    (2.2, 2.0, 0.1, True, "+10%"),
    (0.25, 0.0, 0.25, False, "+0.25 (abs)"),
], ids=["below-negative", "above-negative", "above-positive", "zero-truth"])
def test_the_error_is_positive_when_the_fit_lies_above_the_truth(value, truth, error, relative, text):
    got, got_relative = parameter_error(value, truth)
    assert got == pytest.approx(error, rel=1e-12) and got_relative == relative
    assert format_error(value, truth) == text


def test_recovery_lines_and_report_summary_give_the_same_signed_error(tmp_path):
    mask = np.ones((3, 4), bool)
    frames = np.full((3, 3, 4), 0.5)
    particle = FittedMovie(mask=mask, time=np.arange(3.0), observed=frames, fitted=frames,
                           theta=np.zeros((3, 4)), c0=frames[0], voltage=np.zeros(3))
    fitted = pk.Params(b=[0.0, -1.1])
    truth = (pk.Params(b=[0.0, -1.0]), {"p": np.linspace(-1, 1, 12).reshape(3, 4)})
    results = Results(params=fitted, particles={"p": particle}, history={}, fit={"sigma": 0.02, "free": ["b1"]},
                      truth=truth)
    (line,) = [line for line in recovery_lines(results) if line.startswith("b1")]
    assert line.endswith("error -10%")
    write_report(results, tmp_path, dpi=40)
    (row,) = [row for row in (tmp_path / "summary.txt").read_text().splitlines() if row.strip().startswith("b1")]
    assert row.split()[-1] == "-10%"
