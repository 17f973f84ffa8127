"""The commands around the suite: building the reference server (build)
and MHD from Debian's source packages (mhd), the Debian packages a run
needs (deps), and the benchmarks (bench, wsbench, with what they share in
refecho). build, deps and mhd run before any third-party module is
installed: standard library only."""
