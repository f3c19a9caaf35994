"""A local development host that runs `function_app.py` without Azure Functions Core Tools.

A local tool only: production runs on Azure Functions. See README, "Local development".
"""
