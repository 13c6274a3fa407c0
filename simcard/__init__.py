"""The Expo card: APDU codec, key derivation, the applet emulator, the vpcd bridge and the PC/SC reader helper."""
