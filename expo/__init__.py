"""The Expo mobile-ticket and wallet platform: kernel modules and the composition of the service."""
