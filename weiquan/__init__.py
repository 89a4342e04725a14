"""Our code for the 恶意骚扰维权助手: rules engine, time words, NLU components, channels, stores.

Nothing runs on import.
"""
