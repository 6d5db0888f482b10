"""enhancekit.training"""
