"""Tests of the autumn command."""
