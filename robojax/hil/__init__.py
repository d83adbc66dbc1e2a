"""Human-in-the-loop RL: people, and models of people, who take over from a policy while it
trains. `robojax.hil.human` is the simulated human that runs inside the compiled step."""
