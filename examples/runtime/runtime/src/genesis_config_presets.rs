//! Genesis presets: the states a chain spec can start from.

use crate::{
	AccountId, AuraConfig, BalancesConfig, CouncilConfig, RuntimeGenesisConfig, SudoConfig, UNIT,
};
use alloc::{vec, vec::Vec};
use sp_consensus_aura::sr25519::AuthorityId as AuraId;
use sp_genesis_builder::{PresetId, DEV_RUNTIME_PRESET};
use sp_keyring::Sr25519Keyring;

/// What each development account starts with.
const DEV_ENDOWMENT: u128 = 1_000_000 * UNIT;

/// The development chain: //Alice is sudo and the only Aura authority; //Alice, //Bob and
/// //Charlie form the council; the six well-known dev accounts are funded.
///
/// It is a complete config rather than a patch, so that it can be passed to `build_state` as
/// it is, as well as merged over the default like any other preset.
fn development_config() -> RuntimeGenesisConfig {
	let endowed: Vec<AccountId> = [
		Sr25519Keyring::Alice,
		Sr25519Keyring::Bob,
		Sr25519Keyring::Charlie,
		Sr25519Keyring::Dave,
		Sr25519Keyring::Eve,
		Sr25519Keyring::Ferdie,
	]
	.into_iter()
	.map(|k| k.to_account_id())
	.collect();
	let council: Vec<AccountId> =
		[Sr25519Keyring::Alice, Sr25519Keyring::Bob, Sr25519Keyring::Charlie]
			.into_iter()
			.map(|k| k.to_account_id())
			.collect();
	let aura: AuraId = Sr25519Keyring::Alice.public().into();

	RuntimeGenesisConfig {
		balances: BalancesConfig {
			balances: endowed.into_iter().map(|a| (a, DEV_ENDOWMENT)).collect(),
			..Default::default()
		},
		aura: AuraConfig { authorities: vec![aura] },
		sudo: SudoConfig { key: Some(Sr25519Keyring::Alice.to_account_id()) },
		council: CouncilConfig { members: council, ..Default::default() },
		..Default::default()
	}
}

/// The JSON of the preset named `id`, if this runtime has one.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
	let config = match id.as_ref() {
		DEV_RUNTIME_PRESET => development_config(),
		_ => return None,
	};
	Some(
		serde_json::to_string(&config)
			.expect("serialization to json is expected to work. qed.")
			.into_bytes(),
	)
}

/// The names of all presets.
pub fn preset_names() -> Vec<PresetId> {
	vec![PresetId::from(DEV_RUNTIME_PRESET)]
}
