# Wilson score 95% intervals (prop.test without continuity correction) for tests/test_turing.py.
# Rscript tests/reference/turing_wilson.R > tests/reference/turing_wilson.json
cases <- list(c(0, 12), c(7, 20), c(12, 12), c(23, 36), c(1, 3))
rows <- sapply(cases, function(k) {
  ci <- suppressWarnings(prop.test(k[1], k[2], correct = FALSE)$conf.int)
  sprintf('{"x": %d, "n": %d, "low": %.12f, "high": %.12f}', k[1], k[2], ci[1], ci[2])
})
cat('{"source": "R prop.test(x, n, correct = FALSE)$conf.int, turing_wilson.R", "cases": [\n ',
    paste(rows, collapse = ",\n "), "\n]}\n", sep = "")
