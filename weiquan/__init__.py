"""Our code for the 恶意骚扰维权助手: rules engine, time words, NLU components, channels, stores.

The one thing done on import: every log line of a process that loads this package is masked (weiquan/logmask.py).
Neither the Rasa server nor the action server offers a start-up hook, but both import this package while starting,
after their CLI has configured logging, so this is the one place that covers both.
"""
from weiquan import logmask

logmask.install()
