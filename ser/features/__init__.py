"""Feature frontends: nn.Modules that map waves (B, T) to features (B, F, T') on the model's device."""
