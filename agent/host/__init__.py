"""Host readers. Every reader takes a root path so fixture trees can stand in for ``/``."""
