"""Consortium registry (PRODUCT.md A): consortia, member institutions, departments,
practitioners and their roles at each member."""
