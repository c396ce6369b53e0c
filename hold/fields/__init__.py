"""Neural fields: input encodings (Fourier features, hash grid), SDF and colour networks."""
