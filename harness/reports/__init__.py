"""What a run writes, and the tables made from several runs: results.json,
summary.md and the console lines (results), report.html (html_report), the
real clients' table (interop), the facts the measures give (facts), the
words for the confirmation reruns (confirmation), the rules x versions
matrix (matrix), what changed between two runs (compare), the kill matrix
(killmatrix: from runs' results, it runs nothing) and the flake check
(flake). A report module reads data; none starts a process."""
