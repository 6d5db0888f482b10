"""enhancekit.data"""
