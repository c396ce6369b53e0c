"""Volume rendering: Laplace-CDF density, rays, samplers and compositional rendering (docs/architecture.md)."""
