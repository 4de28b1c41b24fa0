"""The floor under the three wings (kinetics, spectra, mechanics): what every wing needs and no wing owns.

- :mod:`.hdf5`: reading HDF5 with errors that name the file and the dataset, trees of arrays and scalars,
  atomic writes (a temporary name renamed over the target);
- :mod:`.checkpoint`: the state of a long run, kept so that a killed run resumes;
- :mod:`.progress`: one progress bar for every long-running workflow;
- :mod:`.figures`: matplotlib figures without pyplot, maps on a mask;
- :mod:`.units`: the units quantities are stored in and how durations are shown;
- :mod:`.toml`: configuration files;
- :mod:`.parallel`: the MPI communicator and work shared over its ranks.

The floor imports no wing; every wing imports the floor.
"""
