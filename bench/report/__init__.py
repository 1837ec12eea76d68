"""Rendering of results: console tables here; paper-style tables and plots build on the same frames."""
