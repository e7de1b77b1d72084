#!/bin/sh
# Portico desktop image: the X session xrdp-sesman starts for a user: a
# terminal and the IceWM window manager (guest/README.md).
if test -r /etc/profile; then
	. /etc/profile
fi
if test -r "$HOME/.profile"; then
	. "$HOME/.profile"
fi
if test -x "$HOME/.xsession"; then
	exec "$HOME/.xsession"
fi
xterm -geometry 80x24+40+40 &
exec icewm-session
