"""What a run writes, and the tables made from several runs: results.json,
summary.md and the console lines (results), report.html (html_report), the
rules x versions matrix (matrix), what changed between two runs (compare),
the kill matrix (killmatrix) and the flake check (flake)."""
