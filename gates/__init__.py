"""Gates: the gate, handheld check and souvenir terminal programs, and the server side of their entries."""
