"""Thin `main()`s run inside SageMaker processing jobs; each calls the pipeline's step functions."""
