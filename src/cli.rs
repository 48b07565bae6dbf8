//! The command line (clap): `serve`, `admin …`, and the client commands `chat`, `image`,
//! `video`, `task`. Parsing and dispatch only; the work lives in [`crate::server`],
//! [`crate::admin`] and [`crate::client`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides};
use crate::state::Core;

#[derive(Parser)]
#[command(
    name = "llmage",
    version,
    about = "llmage: AI model gateway (元境平台 API) — one OpenAI-compatible API over many vendors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway server.
    Serve(ServeArgs),
    /// Operator commands on the server's data (safe while it runs).
    Admin(AdminArgs),
    #[command(flatten)]
    Client(crate::client::ClientCommand),
}

/// Options shared by `serve` and `admin`.
#[derive(Args, Clone)]
struct CommonArgs {
    /// TOML config file.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (SQLite file, secret key, demo key).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://…); default SQLite in the data dir. Also env DATABASE_URL.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Demo mode: offline sandbox for every model without a channel, demo user and key.
    #[arg(long)]
    demo: bool,
    /// Fixed API key for the demo user.
    #[arg(long, value_name = "KEY")]
    demo_key: Option<String>,
    /// Base URL for links handed out (e.g. https://ai.example.com).
    #[arg(long, value_name = "URL")]
    public_base_url: Option<String>,
}

#[derive(Args)]
struct AdminArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Users.
    #[command(subcommand)]
    User(UserCommand),
    /// Credit adjustments (written to the ledger).
    #[command(subcommand)]
    Credits(CreditsCommand),
    /// Upstream channels.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Redemption codes (兑换码).
    #[command(subcommand)]
    Redeem(RedeemCommand),
}

#[derive(Subcommand)]
enum RedeemCommand {
    /// Create a batch of codes and print them (they are shown only now).
    Create {
        /// Credits each code is worth.
        #[arg(long)]
        credits: i64,
        /// How many codes.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// What the batch is for (kept with the codes).
        #[arg(long, default_value = "")]
        note: String,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// List a user's keys (masked).
    List {
        #[arg(long)]
        phone: String,
    },
    /// Revoke a key by id; it stops working within a second on every server.
    Revoke { id: i64 },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user (or reuse the phone's) and print a new API key.
    Create {
        #[arg(long)]
        phone: String,
        /// Credits granted at creation.
        #[arg(long, default_value_t = 0)]
        credits: i64,
        /// Name of the key.
        #[arg(long, default_value = "default")]
        key_name: String,
    },
    /// Give a user the `admin` role (console admin API) or take it back (`--role user`).
    SetRole {
        #[arg(long)]
        phone: String,
        #[arg(long, value_parser = ["admin", "user"])]
        role: String,
    },
}

#[derive(Subcommand)]
enum CreditsCommand {
    /// Add (or with a negative amount, take) credits.
    Add {
        #[arg(long)]
        phone: String,
        #[arg(long, allow_negative_numbers = true)]
        amount: i64,
        #[arg(long)]
        reason: String,
        /// Idempotency key: the same key applies once.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
}

/// `admin channel add --help`: every vendor with its base URL (from [`crate::vendor::Vendor::info`]), and
/// examples.
fn channel_add_help() -> String {
    format!(
        "Vendors and their base URLs / 供应商与接口地址:\n{}\n{CHANNEL_ADD_EXAMPLES}",
        crate::vendor::Vendor::channel_help()
    )
}

const CHANNEL_ADD_EXAMPLES: &str = "\
Examples / 示例:
  llmage admin channel add --vendor dashscope --base-url https://dashscope.aliyuncs.com --api-key sk-… --models qwen3-max,wan2.2-t2i-plus
  llmage admin channel add --vendor openai --base-url https://api.deepseek.com/v1 --api-key sk-… --models deepseek-chat --price-in 200 --price-out 800
  llmage admin channel add --vendor openai --base-url https://api.openai.com/v1 --api-key sk-… --models qwen3-max=gpt-4o-mini
  llmage admin channel add --vendor zhipu --base-url https://open.bigmodel.cn/api/paas/v4 --api-key … --models cogview-3-flash
";

#[derive(Subcommand)]
enum ChannelCommand {
    /// Add a channel.
    #[command(after_help = channel_add_help())]
    Add {
        /// Vendor protocol (base URLs below).
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::vendor::Vendor::channel_vendors().map(crate::vendor::Vendor::as_str)))]
        vendor: String,
        /// The vendor's API root (see the examples below).
        #[arg(long)]
        base_url: String,
        #[arg(long)]
        api_key: String,
        /// Comma-separated models, each `model` or `model=upstream-name`.
        #[arg(long)]
        models: String,
        #[arg(long)]
        name: Option<String>,
        /// Higher priorities are tried first.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i64,
        /// Share of traffic among channels of the same priority.
        #[arg(long, default_value_t = 1)]
        weight: i64,
        /// Credits per million input tokens for models only this channel knows.
        #[arg(long)]
        price_in: Option<i64>,
        /// Credits per million output tokens for models only this channel knows.
        #[arg(long)]
        price_out: Option<i64>,
        /// Most calls in flight through this channel from one gateway process.
        #[arg(long)]
        max_concurrency: Option<i64>,
        /// Most calls per minute through this channel from one gateway process.
        #[arg(long)]
        rpm: Option<i64>,
    },
    /// List channels (keys masked).
    List,
    /// Stop routing to a channel.
    Disable { id: i64 },
    /// Route to a channel again.
    Enable { id: i64 },
}

/// Parse the command line, run, and turn errors into a message and an exit code.
pub fn main() -> ExitCode {
    crate::allocator::return_large_blocks_to_the_system();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<crate::client::Interrupted>() => ExitCode::from(130),
        Err(e) => {
            eprintln!("错误 / error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn overrides(common: &CommonArgs) -> Overrides {
    Overrides {
        data_dir: common.data_dir.clone(),
        database_url: common.database_url.clone(),
        ..Overrides::default()
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Client(command) => crate::client::run(command).await,
        Command::Serve(args) => {
            let flags = Overrides {
                listen: args.listen,
                demo: args.demo.then_some(true),
                demo_key: args.demo_key,
                public_base_url: args.public_base_url,
                ..overrides(&args.common)
            };
            let config = Config::load(args.common.config.as_deref(), &flags)?;
            crate::logging::init(&config.log_format, "info");
            crate::server::serve(config).await
        }
        Command::Admin(args) => {
            let config = Config::load(args.common.config.as_deref(), &overrides(&args.common))?;
            crate::logging::init(&config.log_format, "warn");
            let core = Core::open(&config).await?;
            let result = admin(&core, args.command).await;
            core.db.close().await;
            result
        }
    }
}

async fn admin(core: &Core, command: AdminCommand) -> anyhow::Result<()> {
    use crate::admin;
    match command {
        AdminCommand::User(UserCommand::Create {
            phone,
            credits,
            key_name,
        }) => admin::user_create(core, &phone, credits, &key_name).await,
        AdminCommand::User(UserCommand::SetRole { phone, role }) => {
            admin::user_set_role(core, &phone, &role).await
        }
        AdminCommand::Credits(CreditsCommand::Add {
            phone,
            amount,
            reason,
            idempotency_key,
        }) => admin::credits_add(core, &phone, amount, &reason, idempotency_key.as_deref()).await,
        AdminCommand::Channel(ChannelCommand::Add {
            vendor,
            base_url,
            api_key,
            models,
            name,
            priority,
            weight,
            price_in,
            price_out,
            max_concurrency,
            rpm,
        }) => {
            admin::channel_add(
                core,
                admin::ChannelArgs {
                    name,
                    vendor,
                    base_url,
                    api_key,
                    models,
                    priority,
                    weight,
                    price_in,
                    price_out,
                    max_concurrency,
                    rpm,
                },
            )
            .await
        }
        AdminCommand::Channel(ChannelCommand::List) => admin::channel_list(core).await,
        AdminCommand::Redeem(RedeemCommand::Create {
            credits,
            count,
            note,
        }) => admin::redeem_create(core, credits, count, &note).await,
        AdminCommand::Channel(ChannelCommand::Disable { id }) => {
            admin::channel_set_enabled(core, id, false).await
        }
        AdminCommand::Channel(ChannelCommand::Enable { id }) => {
            admin::channel_set_enabled(core, id, true).await
        }
        AdminCommand::Key(KeyCommand::List { phone }) => admin::key_list(core, &phone).await,
        AdminCommand::Key(KeyCommand::Revoke { id }) => admin::key_revoke(core, id).await,
    }
}
