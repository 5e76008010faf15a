"""perfhouse dashboard: Streamlit pages reading the warehouse through its query API."""
