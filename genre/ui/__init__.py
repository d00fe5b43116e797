"""Streamlit glue: the only part of ``genre`` that imports streamlit (cached wrappers, shared
sidebar state, widgets and the background training job runner)."""
