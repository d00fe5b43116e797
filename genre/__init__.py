"""genre: music-genre classification core (Streamlit-free)."""
