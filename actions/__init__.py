"""Custom actions: thin glue between Rasa and the rules engine in weiquan/. One module per topic."""
