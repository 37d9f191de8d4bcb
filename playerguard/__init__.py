"""playerguard: inhuman play, churn and purchase propensity from game telemetry, locally or on AWS."""

__version__ = "0.1.0"
