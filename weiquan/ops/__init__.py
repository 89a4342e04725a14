"""Operations helpers: the process supervisor behind `make run` and `make run-production`."""
