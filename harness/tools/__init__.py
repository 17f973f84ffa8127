"""The commands around the suite: building the reference server and
asking it what it is and which mutants its library knows (build), and MHD from Debian's source packages, git or a tarball (mhd), the Debian
packages a run needs (deps), checking a command's input first (inputs),
how a command says it cannot go on and with what exit status (failure),
running pytest (runner), sizing a selection and saying why it is empty
(selection), the reruns of --confirm-failures (confirm), the project's own tests, the kill
matrix and the flake check with its load profiles (selftest, load), the
whole test command's steps (citest), a baseline from several runs
(rebaseline), bisect, coverage, and the benchmarks (bench, wsbench, with
what they share in refecho, and their plot in benchplot). What the CLI
runs before any third-party module is installed uses the standard library
only."""
