"""Offline checks of the SAM template, the state machine definition and the deployment zip."""
