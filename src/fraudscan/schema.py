"""The canonical data model: every table fraudscan reads, with types, keys and NHSA field names.

Everything downstream (validation, importers, the synthetic world, rules, features, the service)
reads the table and column definitions from here, so a column is declared exactly once.
``docs/data-model.md`` is generated from this module (``fraudscan schema --markdown``) and a test
keeps the two in step.

Conventions
-----------
* English snake_case names; ``nhsa`` gives the national-platform field (BRIEF §5) the column
  corresponds to, or ``""`` where the national interfaces have none (e.g. approved beds).
* Codes are strings (leading zeros matter: ICD codes, facility codes, ``med_type``).
* Multi-valued catalogue restrictions are ``;``-separated strings (``"E10;E11"``) so the same
  files round-trip through CSV and Parquet unchanged.
* Money is CNY as float64; validation allows a tolerance of ``AMOUNT_TOLERANCE``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

AMOUNT_TOLERANCE = 0.05
"""Absolute tolerance (CNY) for 'amounts add up' checks; relative tolerance is 0.1 %."""

AMOUNT_REL_TOLERANCE = 0.001

DTYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("s"),
}

DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    dtype: str
    description: str
    nhsa: str = ""
    required: bool = True
    choices: tuple[str, ...] | None = None
    min_value: float | None = None

    def arrow_type(self) -> pa.DataType:
        return DTYPES[self.dtype]


@dataclass(frozen=True)
class ForeignKey:
    """``column`` must match ``ref_table.ref_column`` when not null."""

    column: str
    ref_table: str
    ref_column: str


@dataclass(frozen=True)
class Table:
    """A canonical table: columns, primary key and references to other tables."""

    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    optional: bool = False
    """An optional table may be absent from a workspace (e.g. Medicare data has no fee lines)."""

    extra_checks: tuple[str, ...] = field(default=())
    """Names of table-level checks in :mod:`fraudscan.validation` that apply to this table."""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type(), nullable=True) for c in self.columns])


# ---------------------------------------------------------------------------------------------
# Enumerations (codes follow the national dictionaries where they exist)
# ---------------------------------------------------------------------------------------------

SEX = ("1", "2", "9")
"""``gend``: 1 male, 2 female, 9 unknown."""

INSURANCE_TYPES = ("310", "320", "330", "390", "410", "510", "999")
"""``insutype``: 310 employee basic, 320 civil-servant subsidy, 330 large-amount subsidy,
390 urban-rural resident, 410 work-injury (local dictionaries vary), 510 maternity,
999 other (imports of foreign data)."""

MEDICAL_TYPES = ("11", "12", "13", "14", "21", "41", "51", "52", "9901")
"""``med_type``: 11 general outpatient, 12 registration, 13 emergency, 14 chronic/special
outpatient, 21 inpatient, 41 pharmacy purchase, 51/52 maternity outpatient/inpatient,
9901 other (imports of foreign data)."""

INPATIENT_MEDICAL_TYPES = ("21", "52")

FACILITY_TYPES = (
    "general_hospital",
    "tcm_hospital",
    "specialist_hospital",
    "community_health_centre",
    "township_health_centre",
    "village_clinic",
    "dialysis_centre",
    "rehabilitation_centre",
    "retail_pharmacy",
    "dual_channel_pharmacy",
    "other",
)
"""Facility kinds (``fixmedins_type`` maps onto these; see docs/data-model.md)."""

PHARMACY_TYPES = ("retail_pharmacy", "dual_channel_pharmacy")

ITEM_CLASSES = (
    "western_drug",
    "patent_tcm",
    "herbal_piece",
    "bed",
    "nursing",
    "consultation",
    "lab",
    "imaging",
    "treatment",
    "surgery",
    "rehabilitation",
    "dialysis",
    "consumable",
    "other",
)
"""Fee mix classes (a grouping of ``med_chrgitm_type``)."""

DRUG_CLASSES = ("western_drug", "patent_tcm", "herbal_piece")

LABEL_ENTITY_TYPES = ("fee_line", "settlement", "person", "staff", "facility", "ring")
LABEL_SOURCES = ("synthetic", "inspection", "external")

STAFF_ROLES = ("doctor", "pharmacist", "nurse", "technician")
QUALIFICATION_STATUS = ("active", "suspended", "terminated")
AGREEMENT_STATUS = ("active", "suspended", "terminated")
STOCK_MOVEMENT_TYPES = ("purchase", "sale", "return", "adjustment")
"""``inv_chg_type`` grouped: purchase in, sale out, return (either way, sign in qty), adjustment."""


def _c(name: str, dtype: str, description: str, nhsa: str = "", **kw: object) -> Column:
    return Column(name=name, dtype=dtype, description=description, nhsa=nhsa, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

PERSONS = Table(
    name="persons",
    description="Insured persons (参保人员), from 1101 person information.",
    primary_key=("person_id",),
    columns=(
        _c("person_id", "string", "Person number 人员编号", "psn_no"),
        _c("sex", "string", "Sex 性别 (1 male, 2 female, 9 unknown)", "gend", choices=SEX),
        _c("birth_date", "date", "Date of birth 出生日期", "brdy"),
        _c("insurance_type", "string", "Insurance type 险种类型", "insutype",
           choices=INSURANCE_TYPES),
        _c("person_type", "string", "Person category 人员类别 (e.g. in-service, retired, "
           "resident-adult, resident-child)", "psn_type", required=False),
        _c("insured_area", "string", "Insured area admin division 参保地医保区划",
           "insuplc_admdvs"),
        _c("district", "string", "Supervision district 片区 of residence", "", required=False),
        _c("employer", "string", "Employer 单位名称 (employee scheme)", "emp_name",
           required=False),
        _c("village", "string", "Village / neighbourhood of residence 现住址", "curr_addr",
           required=False),
        _c("family_id", "string", "Household for family mutual-aid accounts 家庭共济",
           "", required=False),
        _c("insured_since", "date", "Date insured 参保日期", "psn_insu_date", required=False),
        _c("death_date", "date", "Date of death 死亡日期 (civil-affairs / funeral data)",
           "die_date", required=False),
        _c("settlement_restricted_until", "date", "Networked settlement suspended until "
           "(sanction on insured person, BRIEF §4.2)", "", required=False),
        _c("restricted_facilities", "string", "If set, fund pays only at these facilities "
           "(;-separated facility ids)", "", required=False),
    ),
)

FACILITIES = Table(
    name="facilities",
    description="Designated medical and pharmacy institutions (定点医药机构), from 1201.",
    primary_key=("facility_id",),
    columns=(
        _c("facility_id", "string", "Facility code 定点医药机构编号", "fixmedins_code"),
        _c("facility_name", "string", "Facility name 定点医药机构名称", "fixmedins_name"),
        _c("facility_type", "string", "Kind of institution 机构类型", "fixmedins_type",
           choices=FACILITY_TYPES),
        _c("level", "int", "Hospital level 医院等级 (3 tertiary, 2 secondary, 1 primary, "
           "0 none, e.g. pharmacies)", "hosp_lv", required=False, min_value=0),
        _c("ownership", "string", "public or private 公立/民营", "", required=False,
           choices=("public", "private")),
        _c("district", "string", "Supervision district 片区", "", required=False),
        _c("admdvs", "string", "Admin division of the facility 医药机构行政区划",
           "medins_admdvs", required=False),
        _c("beds", "int", "Approved beds 核定床位 (facility registry)", "", required=False,
           min_value=0),
        _c("internet_hospital", "bool", "Internet hospital 互联网医院", "", required=False),
        _c("agreement_status", "string", "Service agreement status 协议状态", "",
           required=False, choices=AGREEMENT_STATUS),
        _c("opened_on", "date", "Agreement start 协议开始日期", "", required=False),
    ),
)

STAFF = Table(
    name="staff",
    description="Doctors, pharmacists and other staff with their payment-qualification status "
    "(医保支付资格, BRIEF §4.1).",
    primary_key=("staff_id",),
    foreign_keys=(ForeignKey("facility_id", "facilities", "facility_id"),),
    columns=(
        _c("staff_id", "string", "National doctor / pharmacist code 医保医师/药师代码",
           "bilg_dr_codg"),
        _c("facility_id", "string", "Main practice facility 执业机构", "fixmedins_code"),
        _c("role", "string", "doctor, pharmacist, nurse or technician", "",
           choices=STAFF_ROLES),
        _c("department", "string", "Department code 科室编码", "bilg_dept_codg",
           required=False),
        _c("title", "string", "Professional title 职称", "drord_dr_profttl", required=False),
        _c("qualification_status", "string", "Payment qualification 医保支付资格状态",
           "", choices=QUALIFICATION_STATUS),
        _c("status_from", "date", "Status in force from (suspension / termination start)", "",
           required=False),
        _c("status_to", "date", "Status in force until (end of suspension)", "",
           required=False),
        _c("points_this_year", "int", "Payment-qualification points this calendar year 记分",
           "", required=False, min_value=0),
        _c("death_date", "date", "Date of death or deregistration 注销日期", "",
           required=False),
    ),
)

CATALOGUE = Table(
    name="catalogue",
    description="Insurance catalogue items (医保目录, 1312) with their payment restrictions "
    "(限定支付范围) parsed into parameters.",
    primary_key=("item_code",),
    columns=(
        _c("item_code", "string", "National catalogue code 医保目录编码", "hilist_code"),
        _c("item_name", "string", "Item name 目录名称", "hilist_name"),
        _c("item_class", "string", "Fee class 收费项目类别 (grouping of med_chrgitm_type)",
           "med_chrgitm_type", choices=ITEM_CLASSES),
        _c("grade", "string", "Payment grade 收费项目等级 A/B/C", "chrgitm_lv",
           choices=("A", "B", "C")),
        _c("unit", "string", "Pricing unit 计价单位", "spec_unt", required=False),
        _c("unit_price", "float", "Reference unit price 目录价格", "hilist_pric", min_value=0),
        _c("price_cap_lv1", "float", "Price cap at level-1 facilities 一级医院价格",
           "lv1_hosp_item_pric", required=False, min_value=0),
        _c("price_cap_lv2", "float", "Price cap at level-2 facilities 二级医院价格",
           "lv2_hosp_item_pric", required=False, min_value=0),
        _c("price_cap_lv3", "float", "Price cap at level-3 facilities 三级医院价格",
           "lv3_hosp_item_pric", required=False, min_value=0),
        _c("sex_limit", "string", "Payable only for this sex (1/2)", "", required=False,
           choices=("1", "2")),
        _c("age_min_days", "int", "Payable from this age (days)", "", required=False,
           min_value=0),
        _c("age_max_days", "int", "Payable up to this age (days; 28 = neonates)", "",
           required=False, min_value=0),
        _c("min_facility_level", "int", "Payable from this facility level up", "",
           required=False, min_value=0),
        _c("care_modes", "string", "Payable med_type codes (;-separated)", "med_type",
           required=False),
        _c("insurance_types", "string", "Payable insurance types (;-separated insutype)",
           "insutype", required=False),
        _c("indications", "string", "Payable indications as ICD-10 prefixes (;-separated)", "",
           required=False),
        _c("max_qty_per_day", "float", "Maximum quantity per day", "", required=False,
           min_value=0),
        _c("max_days_supply", "int", "Maximum days' supply per prescription", "prd_days",
           required=False, min_value=0),
        _c("max_per_stay", "int", "Maximum count per stay", "", required=False, min_value=0),
        _c("period_days", "int", "Frequency period (days) for max_per_period", "",
           required=False, min_value=0),
        _c("max_per_period", "int", "Maximum count per period_days", "", required=False,
           min_value=0),
        _c("course_days", "int", "Payable course limit (days since first use)", "",
           required=False, min_value=0),
        _c("departments", "string", "Payable only in these departments (;-separated)", "",
           required=False),
        _c("drug_group", "string", "Pharmacological group for duplicate-drug checks (ATC-like)",
           "", required=False),
        _c("trace_required", "bool", "A drug-box trace code must be scanned 需扫追溯码", "",
           required=False),
        _c("resale_prone", "bool", "Resale-prone drug 易倒卖药品", "", required=False),
        _c("high_value", "bool", "High-value drug or consumable 高值", "", required=False),
        _c("restriction_text", "string", "Restriction as published 限定支付范围原文",
           "hilist_memo", required=False),
        _c("valid_from", "date", "Valid from 开始日期", "begndate"),
        _c("valid_to", "date", "Valid until 结束日期 (null = open)", "enddate", required=False),
    ),
)

SETTLEMENTS = Table(
    name="settlements",
    description="Settled visits and stays (结算信息 2207/2304 with 就诊信息 2201/2401/2402): one "
    "row per settlement.",
    primary_key=("settlement_id",),
    foreign_keys=(
        ForeignKey("person_id", "persons", "person_id"),
        ForeignKey("facility_id", "facilities", "facility_id"),
        ForeignKey("attending_staff_id", "staff", "staff_id"),
    ),
    extra_checks=("date_order", "amounts_add_up", "unique_visit"),
    columns=(
        _c("settlement_id", "string", "Settlement ID 结算ID", "setl_id"),
        _c("visit_id", "string", "Visit ID 就诊ID (joins fee lines)", "mdtrt_id"),
        _c("person_id", "string", "Person number 人员编号", "psn_no"),
        _c("facility_id", "string", "Facility code 定点医药机构编号", "fixmedins_code"),
        _c("medical_type", "string", "Medical type 医疗类别", "med_type", choices=MEDICAL_TYPES),
        _c("insurance_type", "string", "Insurance type at settlement 险种类型", "insutype",
           choices=INSURANCE_TYPES),
        _c("admission_time", "timestamp", "Visit start / admission 开始时间", "begntime"),
        _c("discharge_time", "timestamp", "Visit end / discharge 结束时间", "endtime"),
        _c("settle_time", "timestamp", "Settlement time 结算时间", "setl_time"),
        _c("main_diagnosis", "string", "Main diagnosis code 主诊断 (ICD-10; ICD-9 for "
           "imports)", "dscg_maindiag_code", required=False),
        _c("department", "string", "Admitting department 入院科别", "adm_dept_codg",
           required=False),
        _c("attending_staff_id", "string", "Attending doctor 主诊医师代码", "atddr_no",
           required=False),
        _c("bed_no", "string", "Bed number 入院床位", "adm_bed", required=False),
        _c("discharge_way", "string", "Discharge way 离院方式 (1 ordered, 2 transfer to "
           "hospital, 3 transfer to community, 4 against advice, 5 death, 9 other)",
           "dscg_way", required=False),
        _c("drg_code", "string", "DRG / DIP group 病组", "drg_codg", required=False),
        _c("planned_readmission", "bool", "Planned readmission within 31 days 31天内再住院计划",
           "days_rinp_flag_31", required=False),
        _c("total_amount", "float", "Total medical cost 医疗费总额", "medfee_sumamt",
           min_value=0),
        _c("fund_paid", "float", "Total fund payment 基金支付总额", "fund_pay_sumamt",
           min_value=0),
        _c("account_paid", "float", "Personal account 个人账户支出", "acct_pay", min_value=0),
        _c("cash_paid", "float", "Personal cash 个人现金支出", "psn_cash_pay", min_value=0),
        _c("full_self_pay", "float", "Full self-pay 全自费金额", "fulamt_ownpay_amt",
           required=False, min_value=0),
        _c("out_of_area", "bool", "Settled outside the insured area 异地就医", "out_setl_flag",
           required=False),
        _c("voucher_type", "string", "Voucher 就诊凭证类型 (01 e-voucher, 02 ID card, 03 card)",
           "mdtrt_cert_type", required=False),
    ),
)

DIAGNOSES = Table(
    name="diagnoses",
    description="Diagnoses of a visit (diseinfo[]).",
    primary_key=("settlement_id", "seq"),
    foreign_keys=(ForeignKey("settlement_id", "settlements", "settlement_id"),),
    columns=(
        _c("settlement_id", "string", "Settlement ID 结算ID", "setl_id"),
        _c("seq", "int", "Order of the diagnosis 诊断排序号 (1 = main)", "diag_srt_no",
           min_value=1),
        _c("diag_code", "string", "Diagnosis code 诊断代码 (ICD-10; ICD-9 for imports)",
           "diag_code"),
        _c("is_main", "bool", "Main diagnosis flag 主诊断标志", "maindiag_flag"),
    ),
)

PROCEDURES = Table(
    name="procedures",
    description="Operations and procedures of a stay (oprninfo[]).",
    primary_key=("settlement_id", "seq"),
    optional=True,
    foreign_keys=(
        ForeignKey("settlement_id", "settlements", "settlement_id"),
        ForeignKey("surgeon_staff_id", "staff", "staff_id"),
    ),
    columns=(
        _c("settlement_id", "string", "Settlement ID 结算ID", "setl_id"),
        _c("seq", "int", "Order of the operation", "", min_value=1),
        _c("procedure_code", "string", "Operation code 手术操作代码 (ICD-9-CM-3)",
           "oprn_oprt_code"),
        _c("procedure_date", "date", "Operation date 手术操作日期", "oprn_oprt_date",
           required=False),
        _c("surgeon_staff_id", "string", "Surgeon 术者医师代码", "oper_dr_code",
           required=False),
        _c("incision_group", "string", "Same-incision group for the surgery-discount rule", "",
           required=False),
    ),
)

FEE_LINES = Table(
    name="fee_lines",
    description="Fee detail lines (费用明细 2204/2301).",
    primary_key=("line_id",),
    optional=True,
    foreign_keys=(
        ForeignKey("settlement_id", "settlements", "settlement_id"),
        ForeignKey("item_code", "catalogue", "item_code"),
        ForeignKey("staff_id", "staff", "staff_id"),
    ),
    extra_checks=("line_amounts", "lines_sum_to_settlement", "line_in_catalogue_validity"),
    columns=(
        _c("line_id", "string", "Fee line serial 费用明细流水号", "feedetl_sn"),
        _c("settlement_id", "string", "Settlement ID 结算ID", "setl_id"),
        _c("service_time", "timestamp", "Fee time 费用发生时间", "fee_ocur_time"),
        _c("item_code", "string", "Catalogue code 医疗目录编码", "med_list_codg"),
        _c("qty", "float", "Quantity 数量 (negative for refunds)", "cnt"),
        _c("unit_price", "float", "Unit price 单价", "pric", min_value=0),
        _c("amount", "float", "Line total 明细项目费用总额", "det_item_fee_sumamt"),
        _c("days_supply", "int", "Days' supply 周期天数", "prd_days", required=False,
           min_value=0),
        _c("staff_id", "string", "Ordering doctor 开单医生编码", "bilg_dr_codg",
           required=False),
        _c("department", "string", "Ordering department 开单科室编码", "bilg_dept_codg",
           required=False),
        _c("prescription_no", "string", "Prescription number 处方号", "rxno", required=False),
        _c("approval_flag", "bool", "Hospital approval for restricted use 医院审批标志",
           "hosp_appr_flag", required=False),
        _c("discharge_drug", "bool", "Discharge medication 出院带药标志", "dscg_tkdrug_flag",
           required=False),
    ),
)

TRACE_SCANS = Table(
    name="trace_scans",
    description="Drug-box traceability-code scans (药品追溯码, drugtracinfo[] / 3505): one "
    "code per scan.",
    primary_key=("scan_id",),
    optional=True,
    foreign_keys=(
        ForeignKey("line_id", "fee_lines", "line_id"),
        ForeignKey("facility_id", "facilities", "facility_id"),
        ForeignKey("item_code", "catalogue", "item_code"),
    ),
    columns=(
        _c("scan_id", "string", "Scan serial", ""),
        _c("line_id", "string", "Fee line the box was sold on 费用明细流水号", "feedetl_sn"),
        _c("facility_id", "string", "Facility that scanned it", "fixmedins_code"),
        _c("item_code", "string", "Catalogue code 医疗目录编码", "med_list_codg"),
        _c("trace_code", "string", "Drug traceability code 药品追溯码 (20 digits)",
           "drug_trac_codg"),
        _c("scan_time", "timestamp", "Sale time 销售时间", "sel_retn_time"),
    ),
)

STOCK_MOVEMENTS = Table(
    name="stock_movements",
    description="Purchases, sales and other stock changes (进销存 3501-3507) for "
    "stock-versus-sales checks.",
    primary_key=("movement_id",),
    optional=True,
    foreign_keys=(
        ForeignKey("facility_id", "facilities", "facility_id"),
        ForeignKey("item_code", "catalogue", "item_code"),
    ),
    columns=(
        _c("movement_id", "string", "Movement serial", "fixmedins_bchno"),
        _c("facility_id", "string", "Facility", "fixmedins_code"),
        _c("item_code", "string", "Catalogue code 医疗目录编码", "med_list_codg"),
        _c("movement_type", "string", "purchase / sale / return / adjustment", "inv_chg_type",
           choices=STOCK_MOVEMENT_TYPES),
        _c("qty", "float", "Quantity 数量 (signed: + into stock, - out of stock)", "cnt"),
        _c("unit_price", "float", "Unit price 单价", "pric", required=False, min_value=0),
        _c("movement_time", "timestamp", "Time of the change 库存变更时间", "inv_chg_time"),
    ),
)

LABELS = Table(
    name="labels",
    description="Known fraud and known-clean entities: injected scenarios (synthetic), "
    "inspection outcomes, external labels.",
    primary_key=("entity_type", "entity_id", "scenario"),
    extra_checks=("label_entities_exist",),
    columns=(
        _c("entity_type", "string", "fee_line, settlement, person, staff, facility or ring",
           "", choices=LABEL_ENTITY_TYPES),
        _c("entity_id", "string", "Id of the entity in its table (ring: ring id)", ""),
        _c("scenario", "string", "Fraud scenario or rule id (e.g. phantom_bed, R01); "
           "'decoy' for honest outliers", ""),
        _c("is_fraud", "bool", "True for fraud, False for confirmed clean / decoy", ""),
        _c("amount_at_risk", "float", "Money at stake (CNY)", "", required=False, min_value=0),
        _c("source", "string", "synthetic, inspection or external", "", choices=LABEL_SOURCES),
        _c("group_id", "string", "Case or collusion-ring id tying labelled entities together",
           "", required=False),
        _c("period", "string", "Period the label refers to (YYYY-MM or YYYY)", "",
           required=False),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        PERSONS,
        FACILITIES,
        STAFF,
        CATALOGUE,
        SETTLEMENTS,
        DIAGNOSES,
        PROCEDURES,
        FEE_LINES,
        TRACE_SCANS,
        STOCK_MOVEMENTS,
        LABELS,
    )
}
"""All canonical tables in dependency order (referenced tables first)."""

REQUIRED_TABLES = tuple(name for name, t in TABLES.items() if not t.optional and name != "labels")


def table(name: str) -> Table:
    """Look a table up by name, with a clear error for unknown names."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known tables: {', '.join(TABLES)}") from None


def to_markdown() -> str:
    """Render the data model as the Markdown of docs/data-model.md."""
    out = [
        "# fraudscan data model",
        "",
        "<!-- generated by `fraudscan schema --markdown`; edit src/fraudscan/schema.py -->",
        "",
        "Every workspace holds these tables as Parquet files under `tables/`. Column names are",
        "English snake_case; **NHSA field** is the national-platform field (医疗保障信息平台",
        "接口规范) each corresponds to. Codes are strings; multi-valued catalogue restrictions",
        "are `;`-separated. A table marked *optional* may be absent (the Medicare import has no",
        "fee lines); every step copes with that.",
        "",
        "Validation on import checks types, required values, allowed codes, keys and references,",
        "date order, amounts (`total_amount = fund_paid + account_paid + cash_paid` within",
        f"{AMOUNT_TOLERANCE} CNY or {AMOUNT_REL_TOLERANCE:.1%}, `amount = qty × unit_price`, fee",
        "lines summing to their settlement) and that fee-line codes are in the catalogue and valid",
        "on the service date.",
        "",
    ]
    for t in TABLES.values():
        out.append(f"## `{t.name}`{' (optional)' if t.optional else ''}")
        out.append("")
        out.append(t.description)
        out.append("")
        out.append(f"Primary key: `{', '.join(t.primary_key)}`.")
        if t.foreign_keys:
            refs = "; ".join(
                f"`{fk.column}` → `{fk.ref_table}.{fk.ref_column}`" for fk in t.foreign_keys
            )
            out.append(f"References: {refs}.")
        out.append("")
        out.append("| column | type | required | NHSA field | meaning |")
        out.append("|---|---|---|---|---|")
        for c in t.columns:
            meaning = c.description
            if c.choices:
                meaning += " — one of " + ", ".join(f"`{x}`" for x in c.choices)
            nhsa = f"`{c.nhsa}`" if c.nhsa else "—"
            out.append(
                f"| `{c.name}` | {c.dtype} | {'yes' if c.required else 'no'} | {nhsa} | "
                f"{meaning} |"
            )
        out.append("")
    return "\n".join(out)
