"""FastAGI scripts of the inbound IVR (menus as data come with the IVR feature)."""
