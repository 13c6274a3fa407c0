"""Who may call the service: device and service credentials, staff logins and their sessions."""
