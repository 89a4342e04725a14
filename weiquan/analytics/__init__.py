"""Analytics: the turns of every conversation, masked, in a store of their own (fed by Rasa's event broker), and the
figures, review inbox and CSV the operator console shows from it. docs/analytics.md."""
