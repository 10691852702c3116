# clmm_reference(d, formula): fit ordinal::clmm with its defaults (Laplace, nlminb) and
# return the numbers tests/test_mixed.py compares against. Character columns become
# factors with levels in order of first appearance (the first is the reference, as in
# glidemed); unused score levels dropped.
clmm_reference <- function(d, formula, repeats = 3) {
  for (col in names(d)) if (is.character(d[[col]])) d[[col]] <- factor(d[[col]], levels = unique(d[[col]]))
  d$score <- factor(d$score, levels = sort(unique(d$score)), ordered = TRUE)
  fit <- clmm(formula, data = d)
  times <- replicate(repeats, system.time(clmm(formula, data = d)))  # best of `repeats`
  seconds <- min(times["elapsed", ])
  cpu_seconds <- min(times["user.self", ] + times["sys.self", ])
  s <- summary(fit)
  co <- coef(s)
  vc <- VarCorr(fit)
  list(
    n = nrow(d),
    loglik = as.numeric(logLik(fit)),
    cutpoints = as.list(fit$alpha),
    beta = as.list(fit$beta),
    se = as.list(co[names(fit$beta), "Std. Error"]),
    cutpoint_se = as.list(co[names(fit$alpha), "Std. Error"]),
    sd = lapply(vc, function(v) as.numeric(attr(v, "stddev"))),
    converged = fit$optRes$convergence == 0,
    seconds = seconds,
    cpu_seconds = cpu_seconds,
    r_version = R.version.string,
    ordinal_version = as.character(packageVersion("ordinal"))
  )
}
