"""Training loops (SFT, Curiosity-Coherence RFT, Pixel TTRL) and examples; torch imported lazily by each."""
