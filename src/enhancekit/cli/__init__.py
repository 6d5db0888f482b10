"""enhancekit.cli"""
