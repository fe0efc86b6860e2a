"""The payloads of the definitions (pydantic): what the API and the command line accept and show."""
