//! Command line: `sc-cli`'s run command plus the subcommands a network operator needs.

/// The node's command line.
#[derive(Debug, clap::Parser)]
pub struct Cli {
	#[command(subcommand)]
	pub subcommand: Option<Subcommand>,

	#[clap(flatten)]
	pub run: sc_cli::RunCmd,
}

/// What the binary does besides running a node.
#[derive(Debug, clap::Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Subcommand {
	/// Key management: `key insert` puts a validator's Aura and GRANDPA keys in its keystore.
	#[command(subcommand)]
	Key(sc_cli::KeySubcommand),

	/// Write the chain spec given with `--chain`, plain or `--raw`.
	BuildSpec(sc_cli::BuildSpecCmd),

	/// Remove the whole chain database.
	PurgeChain(sc_cli::PurgeChainCmd),
}
