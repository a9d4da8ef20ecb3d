"""The Textual face of convtui. Screens only display what convtui.core and convtui.toy compute."""
