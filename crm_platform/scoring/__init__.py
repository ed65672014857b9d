"""Lead scoring: train, evaluate, register, score (issue 9). Plain Python and SQL; no Dagster."""
