"""The pure core: rules engine, rule data, vocabulary, time words, working days, the clock, masking, contracts.

No Rasa, no I/O beyond reading the project's own data files once, no wall clock outside clock.py.
"""
