// Python bindings of the pixelkinetics core: conversion, GIL release and exception registration only.
#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "batch.hpp"
#include "curves.hpp"
#include "elasticity.hpp"
#include "errors.hpp"
#include "params.hpp"

namespace py = pybind11;
using namespace pixelkinetics;

namespace {

py::dict stats_to_dict(const SolverStats& s) {
  py::dict d;
  d["n_steps"] = s.n_steps;
  d["n_newton"] = s.n_newton;
  d["n_halvings"] = s.n_halvings;
  d["n_factorizations"] = s.n_factorizations;
  d["n_symmetric"] = s.n_symmetric;
  d["n_lu_fallbacks"] = s.n_lu_fallbacks;
  d["n_adjoint_solves"] = s.n_adjoint_solves;
  d["n_tangent_solves"] = s.n_tangent_solves;
  return d;
}

Movie make_movie(const std::string& name, py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast> mask,
                       double h, bool connect, Eigen::VectorXd site_weight, Eigen::VectorXd c0,
                       Eigen::VectorXd times, const std::string& driving, Eigen::VectorXd drive,
                       Eigen::MatrixXd observed, Eigen::MatrixXd obs_weight) {
  if (mask.ndim() != 2)
    throw std::invalid_argument("particle '" + name + "': mask must be 2-D, got " + std::to_string(mask.ndim()) +
                                " dimensions");
  std::vector<std::uint8_t> values(mask.data(), mask.data() + mask.size());
  Grid grid(static_cast<int>(mask.shape(0)), static_cast<int>(mask.shape(1)), values, h, connect);
  return Movie(name, std::move(grid), std::move(site_weight), std::move(c0), std::move(times),
                  parse_driving(driving), std::move(drive), std::move(observed), std::move(obs_weight));
}

py::dict result_to_dict(MovieResult& r, bool frames, bool loss, bool gradient) {
  py::dict d;
  if (frames) {
    d["concentration"] = std::move(r.concentration);
    d["voltage"] = std::move(r.voltage);
  }
  d["stats"] = stats_to_dict(r.stats);
  if (loss) {
    d["loss"] = r.loss;
    d["misfit"] = r.misfit;
  }
  if (gradient) {
    d["grad_globals"] = std::move(r.grad_globals);
    d["grad_theta"] = std::move(r.grad_theta);
    d["grad_c0"] = std::move(r.grad_c0);
    d["grad_drive"] = std::move(r.grad_drive);
  }
  return d;
}

py::list solve(const Batch& batch, const GlobalParams& g, const std::vector<Eigen::VectorXd>& theta,
               const SolverSettings& settings, const std::vector<Eigen::VectorXd>& c0, BatchMode mode) {
  std::vector<MovieResult> results;
  {
    // Inputs are already C++ objects; nothing below touches Python.
    py::gil_scoped_release release;
    results = solve_batch(batch.movies(), g, theta, settings, mode, c0);
  }
  py::list out;
  for (auto& r : results)
    out.append(result_to_dict(r, true, mode != BatchMode::Simulate, mode == BatchMode::LossAndGradient));
  return out;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "pixelkinetics solver core (C++/Eigen/OpenMP)";
  py::register_exception<SolverError>(m, "SolverError", PyExc_RuntimeError);
  m.attr("SOLVER_STATS") = stats_to_dict(SolverStats{}).attr("keys")();

  py::class_<GlobalParams>(m, "GlobalParams")
      .def(py::init<>())
      .def_readwrite("k0", &GlobalParams::k0)
      .def_readwrite("alpha", &GlobalParams::alpha)
      .def_readwrite("Omega", &GlobalParams::Omega)
      .def_readwrite("kappa", &GlobalParams::kappa)
      .def_readwrite("B", &GlobalParams::B)
      .def_readwrite("D", &GlobalParams::D)
      .def_readwrite("a", &GlobalParams::a)
      .def_readwrite("b", &GlobalParams::b)
      .def_property(
          "j0_base", [](const GlobalParams& g) { return to_string(g.j0_base); },
          [](GlobalParams& g, const std::string& s) { g.j0_base = parse_j0_base(s); })
      .def_readwrite("j0_s", &GlobalParams::j0_s)
      .def_readwrite("j0_c", &GlobalParams::j0_c)
      .def("names", &GlobalParams::names)
      .def("validate", &GlobalParams::validate);

  py::class_<SolverSettings>(m, "SolverSettings")
      .def(py::init<>())
      .def_property(
          "scheme", [](const SolverSettings& s) { return to_string(s.scheme); },
          [](SolverSettings& s, const std::string& v) { s.scheme = parse_scheme(v); })
      .def_property(
          "linear_solver", [](const SolverSettings& s) { return to_string(s.linear_solver); },
          [](SolverSettings& s, const std::string& v) { s.linear_solver = parse_linear_solver(v); })
      .def_readwrite("n_sub", &SolverSettings::n_sub)
      .def_readwrite("sigma", &SolverSettings::sigma)
      .def_readwrite("lam_s", &SolverSettings::lam_s)
      .def_readwrite("lam_0", &SolverSettings::lam_0)
      .def_readwrite("newton_tol", &SolverSettings::newton_tol)
      .def_readwrite("max_newton", &SolverSettings::max_newton)
      .def_readwrite("max_halvings", &SolverSettings::max_halvings)
      .def_readwrite("predictor_order", &SolverSettings::predictor_order)
      .def_readwrite("reuse_jacobian", &SolverSettings::reuse_jacobian)
      .def_readwrite("fit_initial", &SolverSettings::fit_initial)
      .def_readwrite("newton_budget", &SolverSettings::newton_budget)
      .def("first_fitted_frame", &SolverSettings::first_fitted_frame)
      .def("validate", &SolverSettings::validate);

  // The constitutive curves (curves.hpp): (values, derivatives) at many points.
  const auto as_pair = [](CurvePoints r) { return std::make_pair(std::move(r.value), std::move(r.derivative)); };
  m.def(
      "homogeneous_potential",
      [as_pair](const GlobalParams& g, const Eigen::VectorXd& c) { return as_pair(homogeneous_potential_curve(g, c)); },
      py::arg("g"), py::arg("c"), "(mu_h(c), d mu_h / dc)");
  m.def(
      "exchange_current",
      [as_pair](const GlobalParams& g, const Eigen::VectorXd& c) { return as_pair(exchange_current_curve(g, c)); },
      py::arg("g"), py::arg("c"), "(j0(c), d ln j0 / dc), k0 and theta excluded");
  m.def(
      "reaction_rate",
      [as_pair](const GlobalParams& g, const Eigen::VectorXd& c, const Eigen::VectorXd& eta) {
        return as_pair(reaction_rate_curve(g, c, eta));
      },
      py::arg("g"), py::arg("c"), py::arg("eta"), "(R(c, eta), dR / d eta) of a site with theta = 0");

  py::class_<Movie>(m, "Movie")
      .def(py::init(&make_movie), py::arg("name"), py::arg("mask"), py::arg("h"), py::arg("connect"),
           py::arg("site_weight"), py::arg("c0"), py::arg("times"), py::arg("driving"), py::arg("drive"),
           py::arg("observed"), py::arg("obs_weight"))
      .def_readonly("name", &Movie::name)
      .def_property_readonly("n_sites", &Movie::n_sites)
      .def_property_readonly("n_frames", &Movie::n_frames)
      .def_property_readonly("n_edges", [](const Movie& p) { return p.grid.n_edges(); })
      .def_property_readonly("pixel", [](const Movie& p) { return p.grid.pixel(); })
      .def_property_readonly("edges", [](const Movie& p) {
        return std::make_pair(p.grid.edge_i(), p.grid.edge_j());
      });

  py::class_<Batch>(m, "Batch")
      .def(py::init<std::vector<Movie>>(), py::arg("movies"))
      .def_property_readonly("n_movies", [](const Batch& b) { return b.movies().size(); })
      .def(
          "simulate",
          [](const Batch& b, const GlobalParams& g, const std::vector<Eigen::VectorXd>& theta, const SolverSettings& s,
             const std::vector<Eigen::VectorXd>& c0) { return solve(b, g, theta, s, c0, BatchMode::Simulate); },
          py::arg("g"), py::arg("theta"), py::arg("settings"), py::arg("c0") = std::vector<Eigen::VectorXd>{})
      .def(
          "loss",
          [](const Batch& b, const GlobalParams& g, const std::vector<Eigen::VectorXd>& theta, const SolverSettings& s,
             const std::vector<Eigen::VectorXd>& c0) { return solve(b, g, theta, s, c0, BatchMode::Loss); },
          py::arg("g"), py::arg("theta"), py::arg("settings"), py::arg("c0") = std::vector<Eigen::VectorXd>{})
      .def(
          "loss_and_gradient",
          [](const Batch& b, const GlobalParams& g, const std::vector<Eigen::VectorXd>& theta, const SolverSettings& s,
             const std::vector<Eigen::VectorXd>& c0) { return solve(b, g, theta, s, c0, BatchMode::LossAndGradient); },
          py::arg("g"), py::arg("theta"), py::arg("settings"), py::arg("c0") = std::vector<Eigen::VectorXd>{});

  py::class_<Linearization>(m, "Linearization",
                            "Forward solutions at one point, kept for Gauss-Newton Hessian-vector products.")
      .def(py::init([](const Batch& b, const GlobalParams& g, std::vector<Eigen::VectorXd> theta,
                       const SolverSettings& s, const std::vector<Eigen::VectorXd>& c0, bool with_gradient) {
             py::gil_scoped_release release;
             return std::make_unique<Linearization>(b.movies(), g, std::move(theta), s, c0, with_gradient);
           }),
           py::arg("batch"), py::arg("g"), py::arg("theta"), py::arg("settings"),
           py::arg("c0") = std::vector<Eigen::VectorXd>{}, py::arg("with_gradient") = false)
      .def("results",
           [](Linearization& lin) {
             py::list out;
             for (MovieResult r : lin.results()) out.append(result_to_dict(r, true, true, r.grad_theta.size() > 0));
             return out;
           })
      .def(
          "gauss_newton_product",
          [](Linearization& lin, const Eigen::VectorXd& d_globals, const std::vector<Eigen::VectorXd>& d_theta,
             const std::vector<Eigen::VectorXd>& d_c0) {
            std::vector<MovieResult> results;
            {
              py::gil_scoped_release release;
              results = lin.gauss_newton_product(d_globals, d_theta, d_c0);
            }
            py::list out;
            for (auto& r : results) out.append(result_to_dict(r, false, true, true));
            return out;
          },
          py::arg("d_globals"), py::arg("d_theta"), py::arg("d_c0"));

  py::class_<ElasticBatch>(m, "ElasticBatch",
                           "Particles of one elastic problem (elasticity.hpp): masks, factorisations and solves.")
      .def(py::init([](const std::vector<py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>>& masks,
                       const std::vector<double>& h) {
             if (masks.size() != h.size()) throw std::invalid_argument("one pixel size per mask");
             std::vector<ElasticMesh> meshes;
             for (std::size_t k = 0; k < masks.size(); ++k) {
               const auto& mask = masks[k];
               if (mask.ndim() != 2) throw std::invalid_argument("elastic mask must be 2-D");
               std::vector<std::uint8_t> values(mask.data(), mask.data() + mask.size());
               meshes.emplace_back(static_cast<int>(mask.shape(0)), static_cast<int>(mask.shape(1)), values, h[k]);
             }
             return ElasticBatch(std::move(meshes));
           }),
           py::arg("masks"), py::arg("h"))
      .def_property_readonly("n_particles", [](const ElasticBatch& b) { return b.meshes().size(); })
      .def("pixel", [](const ElasticBatch& b, int k) { return b.meshes().at(k).pixel(); })
      .def("component", [](const ElasticBatch& b, int k) { return b.meshes().at(k).component(); })
      .def("n_free", [](const ElasticBatch& b, int k) { return b.meshes().at(k).n_free(); })
      .def("nodes", [](const ElasticBatch& b, int k) {
        return std::make_pair(b.meshes().at(k).node_x(), b.meshes().at(k).node_y());
      })
      .def(
          "factorize",
          [](ElasticBatch& b, const Eigen::Matrix3d& D) {
            py::gil_scoped_release release;
            b.factorize(D);
          },
          py::arg("D"))
      .def(
          "strains",
          [](const ElasticBatch& b, const std::vector<std::vector<Eigen::MatrixXd>>& eigenstrains) {
            py::gil_scoped_release release;
            return b.strains(eigenstrains);
          },
          py::arg("eigenstrains"))
      .def(
          "displacements",
          [](const ElasticBatch& b, int k, const std::vector<Eigen::MatrixXd>& eigenstrains) {
            py::gil_scoped_release release;
            return b.solver(k).displacements(eigenstrains);
          },
          py::arg("k"), py::arg("eigenstrains"))
      .def(
          "stiffness_gradient",
          [](const ElasticBatch& b, const std::vector<Eigen::MatrixXd>& eigenstrains,
             const std::vector<Eigen::MatrixXd>& weights) {
            py::gil_scoped_release release;
            return b.stiffness_gradient(eigenstrains, weights);
          },
          py::arg("eigenstrains"), py::arg("weights"));

  m.def("set_num_threads", &set_num_threads, py::arg("n"), "Number of OpenMP threads for particle batches.");
  m.def("num_threads", &num_threads);
  m.def("has_openmp", &has_openmp);
}
