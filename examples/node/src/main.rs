//! `example-node`: a node for the example solo chain (Aura authoring, GRANDPA finality).

mod cli;
mod command;
mod rpc;
mod service;

fn main() -> sc_cli::Result<()> {
	command::run()
}
