"""Helpers the tests share: photos made from the bundled faces, a dashboard server, the scripts run in-process."""
