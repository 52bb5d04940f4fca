"""Tests of the documentation site: the generated reference pages and the strict build."""
