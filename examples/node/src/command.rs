//! What the binary does with its command line.

use std::path::PathBuf;

use example_runtime::opaque::Block;
use sc_cli::SubstrateCli;
use sc_network::config::NetworkBackendType;
use sp_runtime::traits::Block as BlockT;

use crate::{
	cli::{Cli, Subcommand},
	service,
};

impl SubstrateCli for Cli {
	fn impl_name() -> String {
		env!("CARGO_PKG_NAME").into()
	}

	fn impl_version() -> String {
		env!("CARGO_PKG_VERSION").into()
	}

	fn description() -> String {
		env!("CARGO_PKG_DESCRIPTION").into()
	}

	fn author() -> String {
		"runtime-pipeline".into()
	}

	fn support_url() -> String {
		"the runtime-pipeline repository's issue tracker".into()
	}

	fn copyright_start_year() -> i32 {
		2026
	}

	/// Only chain spec files: the node embeds no runtime to make a built-in chain from.
	fn load_spec(&self, id: &str) -> Result<Box<dyn sc_service::ChainSpec>, String> {
		if matches!(id, "" | "dev" | "local") {
			return Err(format!(
				"example-node has no built-in chain {id:?}: pass --chain <spec.json>, a chain \
				 spec made from a runtime the pipeline built"
			));
		}
		let spec: sc_service::GenericChainSpec =
			sc_service::GenericChainSpec::from_json_file(PathBuf::from(id))
				.map_err(|e| format!("chain spec {id}: {e}"))?;
		Ok(Box::new(spec))
	}
}

/// Parse the command line and run it.
pub fn run() -> sc_cli::Result<()> {
	let cli = Cli::from_args();

	match &cli.subcommand {
		Some(Subcommand::Key(cmd)) => cmd.run(&cli),
		Some(Subcommand::BuildSpec(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.sync_run(|config| cmd.run(config.chain_spec, config.network))
		},
		Some(Subcommand::PurgeChain(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.sync_run(|config| cmd.run(config.database))
		},
		None => {
			let runner = cli.create_runner(&cli.run)?;
			runner.run_node_until_exit(|config| async move {
				match config.network.network_backend {
					NetworkBackendType::Libp2p => service::new_full::<
						sc_network::NetworkWorker<Block, <Block as BlockT>::Hash>,
					>(config),
					NetworkBackendType::Litep2p => {
						service::new_full::<sc_network::Litep2pNetworkBackend>(config)
					},
				}
				.map_err(sc_cli::Error::Service)
			})
		},
	}
}
