"""``dunning whatif``: replay a real book under several dunning policies, through the real
pipeline on copies, with retry outcomes drawn from a model of what a retry's timing changes."""
