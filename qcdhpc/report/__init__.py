"""Reports: tables and figures that put model, Monte Carlo and exact results side by side."""
