"""The test suite, a regular package so that no installed `tests` package (ppi_python ships one) shadows it."""
