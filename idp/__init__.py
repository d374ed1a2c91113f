"""Entry points: the ``idp`` console script and the demo. Sits above every layer."""
