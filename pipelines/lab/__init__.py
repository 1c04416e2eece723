"""Lab: what runs beside the nights: the synthetic company (generate), the demo, the soak, the MRR
oracle, the backtest, the calibration, the tier-policy lab and the benchmarks."""
